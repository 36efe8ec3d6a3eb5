// The devices page: each attribute's name links to its History page.
//
// Done here rather than in the row markup (templates/_tree.html) because rows are also made
// while the page is open, by static/portal.js from a <template> it fills with textContent:
// one observer covers the rows rendered by the server and the ones that appear live.
const tree = document.getElementById("device-tree");
const historyUrl = tree && tree.dataset.historyUrl;
const NAME = ".attribute[data-key] > .name";

function link(nameCell) {
  const key = nameCell.parentElement.dataset.key;
  if (!key || nameCell.querySelector("a")) return;
  const a = document.createElement("a");
  a.href = `${historyUrl}?${new URLSearchParams({ topic: key })}`;
  a.textContent = nameCell.textContent;
  a.title = `History of ${key}`;
  a.dataset.testid = "attribute-history";
  nameCell.replaceChildren(a);
}

if (historyUrl) {
  tree.querySelectorAll(NAME).forEach(link);
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach((node) => {
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    if (node.matches(NAME)) link(node);
    node.querySelectorAll(NAME).forEach(link);
  }))).observe(tree, { childList: true, subtree: true });
}
