// Start Swagger UI on /api/docs. A file, not an inline script: the portal's
// Content-Security-Policy runs scripts from this site only.
'use strict';

window.addEventListener('DOMContentLoaded', () => {
  const root = document.getElementById('swagger-ui');
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // the default sends the document to an outside validator
    // "Try it out" runs with the portal session; a write with a session needs the CSRF
    // token, as the portal's own forms do (a call with an API key ignores it).
    requestInterceptor: (req) => {
      req.headers['X-CSRFToken'] = csrfToken;
      return req;
    },
  });
});
