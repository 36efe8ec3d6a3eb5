"""How the portal serves: gevent's greenlets when gunicorn's gevent worker has patched the
standard library (`./octopus up`, the image), threads otherwise (`flask run`, the tests'
test client). One greenlet per browser instead of one thread: the live view's fan-out to
100 browsers takes half the CPU it took with threads (doc/performance.md, "Live view")."""
import gc
from functools import partial


def gevent_patched():
    """True in a gevent worker: the standard library's sockets are gevent's."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


def async_mode():
    """Flask-SocketIO's async_mode for how this process runs."""
    return "gevent" if gevent_patched() else "threading"


def pause():
    """Let the other greenlets run (between chunks of long work in Python); nothing with
    threads, which the interpreter switches by itself."""
    if gevent_patched():
        import gevent
        # not sleep(0), which runs the greenlets ready now but seldom polls sockets and timers
        gevent.idle()


def off_the_loop(function, *args, **kwargs):
    """Call `function` in a thread of gevent's pool when greenlets serve: long work in C
    (an argon2 check is ~100 ms) would otherwise hold every greenlet, the browsers' live
    views included. Called directly otherwise."""
    if not gevent_patched():
        return function(*args, **kwargs)
    import gevent
    return gevent.get_hub().threadpool.apply(partial(function, *args, **kwargs))


def settle_heap():
    """Once the app is built, in a gevent worker: leave what start-up made (the modules, the
    app; ~70,000 objects) out of the cyclic collector's full collections, which walked it
    all every time while every greenlet waited: 42-76 ms, about twice a minute, with 100
    browsers on the live view; with this, none in a 35 s run and 3 ms at its end
    (doc/performance.md, "Live view"). Not with threads or in the tests, which build many
    apps in one process: a frozen cycle is never freed."""
    if gevent_patched():
        gc.freeze()
