# Runs once in every new interpreter (src/interp/group.rs), before any application code.
# Written for Python 2.7 and 3.x alike.
import sys

try:
    import _thread
except ImportError:  # Python 2
    import thread as _thread

try:
    _string_types = (str, unicode)  # noqa: F821 (Python 2)
except NameError:
    _string_types = (str,)


ERR = 3
WARNING = 4
INFO = 6


class Log(object):
    """A text stream whose complete lines go to Apache's error log (attributed to the
    current request, if any). On Python 3 only the binary layer below sys.stdout, sys.stderr
    and wsgi.errors (see LogBuffer); on Python 2 those streams themselves."""

    encoding = 'utf-8'
    errors = 'backslashreplace'

    def __init__(self, log, level, name):
        self._log = log
        self._level = level
        # Partial lines per thread: one object serves every request of the interpreter, and
        # each thread's lines stay whole and attributed to its own request. A thread-local,
        # so that what a thread left goes with it (a later thread reusing its ident starts
        # afresh).
        self._local = _thread._local()
        self.name = name
        self.closed = False

    def write(self, text):
        if not isinstance(text, _string_types):
            raise TypeError('write() argument must be str, not %s' % type(text).__name__)
        local = self._local
        lines = (getattr(local, 'partial', '') + text).split('\n')
        local.partial = lines.pop()
        for line in lines:
            self._log(self._level, line)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        local = self._local
        buffered = getattr(local, 'partial', '')
        if buffered:
            local.partial = ''
            self._log(self._level, buffered)

    def close(self):
        self.flush()

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True


_warned_str_write = []


class LogBuffer(object):
    """mod_wsgi.Log (Python 3): the binary layer of sys.stdout, sys.stderr and wsgi.errors,
    each of them an io.TextIOWrapper over one of these (utf-8, errors='replace', line
    buffered, write-through), as in mod_wsgi 4.9 and 6. write() and writelines() take
    bytes-like objects (bytes, bytearray, memoryview); each complete line goes to Apache's
    error log, attributed to the request this thread serves.

    sys.stdout and sys.stderr have one each for the interpreter, whose partial lines are kept
    per thread (flushed when the thread's request ends: see setup's end_request); wsgi.errors
    has one per request, which ends (flushed, then refusing writes with RuntimeError, as in
    mod_wsgi) when the request does. A request's threads may share its wsgi.errors: the
    partial line is only touched under the stream's lock (re-entrant, for a __del__ that
    prints on the same thread), the log calls are made outside it."""

    __slots__ = ('_log', '_level', 'name', '_local', '_partial', '_lock', '_expired')

    # Always open (as mod_wsgi's): a TextIOWrapper over it keeps passing writes down, so that
    # a request's ended stream says why it refuses them. Plain class attributes: the wrapper
    # reads `closed` on every write.
    closed = False
    encoding = 'utf-8'
    errors = 'replace'

    def __init__(self, log, level, name, per_thread):
        self._log = log
        self._level = level
        self.name = name
        # A shared stream's partial lines: one bytearray per thread, in a thread-local (gone
        # with its thread). A request's stream: the one bytearray below.
        self._local = _thread._local() if per_thread else None
        self._partial = bytearray()
        self._lock = _thread.RLock()
        self._expired = False

    def _buffer(self):
        """This thread's partial line (the lock held)."""
        local = self._local
        if local is None:
            return self._partial
        try:
            return local.partial
        except AttributeError:
            local.partial = partial = bytearray()
            return partial

    def write(self, data):
        if self._expired:
            raise RuntimeError('write() called on wsgi.errors after request completed')
        if isinstance(data, str):
            # As mod_wsgi 6: str is accepted on the binary layer, with one warning per
            # interpreter.
            if not _warned_str_write:
                _warned_str_write.append(True)
                import warnings
                warnings.warn('Writing str to wsgi.errors.buffer / sys.stderr.buffer is deprecated; '
                              'write a bytes-like object instead.', DeprecationWarning, 2)
            data = data.encode('utf-8', 'backslashreplace')
        else:
            try:
                data = memoryview(data).tobytes()
            except TypeError:
                raise TypeError("a bytes-like object is required, not '%s'" % type(data).__name__)
        end = data.rfind(b'\n')
        with self._lock:
            partial = self._buffer()
            if end < 0:
                partial += data
                return len(data)
            if partial:
                block = bytes(partial) + data[:end]
                del partial[:]
            else:
                block = data[:end]
            partial += data[end + 1:]
        for line in block.split(b'\n'):
            self._log(self._level, line)
        return len(data)

    def writelines(self, lines):
        if self._expired:
            raise RuntimeError('writelines() called on wsgi.errors after request completed')
        try:
            lines = iter(lines)
        except TypeError:
            raise TypeError('writelines() argument must be an iterable of bytes-like objects')
        for line in lines:
            self.write(line)

    def flush(self):
        """Logs this thread's partial line (a request's stream: the request's)."""
        if self._expired:
            return
        with self._lock:
            local = self._local
            partial = self._partial if local is None else getattr(local, 'partial', None)
            if not partial:
                return
            buffered = bytes(partial)
            del partial[:]
        self._log(self._level, buffered)

    def close(self):
        """The end of a request's wsgi.errors: what is left is logged, and later writes
        raise. A shared stream (sys.stdout, sys.stderr) only flushes. The wrapper closes it
        once more when it goes (it never looks closed): nothing to do then."""
        if self._expired:
            return
        self.flush()
        if self._local is None:
            self._expired = True

    def _dealloc_warn(self, source):
        # Asked by a TextIOWrapper closed on deallocation: having it saves an AttributeError
        # raised and cleared per request.
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def seekable(self):
        return False

    def writable(self):
        return True

    def fileno(self):
        raise OSError('wsgi.errors log object has no file descriptor')


LogBuffer.__name__ = 'Log'
LogBuffer.__qualname__ = 'Log'
LogBuffer.__module__ = 'mod_wsgi'


def _text_stream(log, level, name, per_thread, _wrapper=[]):
    """An io.TextIOWrapper over a new LogBuffer, as mod_wsgi makes its streams: utf-8,
    errors='replace', universal newlines, line buffered, write-through."""
    if not _wrapper:
        import io
        _wrapper.append(io.TextIOWrapper)
    return _wrapper[0](LogBuffer(log, level, name, per_thread), 'utf-8', 'replace', None, True, True)


class Restricted(object):
    """mod_wsgi.Restricted: sys.stdin (WSGIRestrictStdin On) or sys.stdout
    (WSGIRestrictStdout On). Nothing sensible is connected to them, so any use, every
    attribute and iteration, raises OSError naming the stream, as in mod_wsgi 6."""

    __slots__ = ('_mod_wsgi_name',)

    def __init__(self, name):
        object.__setattr__(self, '_mod_wsgi_name', name)

    def _refuse(self, *args, **kwargs):
        raise IOError('%s access restricted by mod_wsgi' % object.__getattribute__(self, '_mod_wsgi_name'))

    def __getattribute__(self, name):
        object.__getattribute__(self, '_refuse')()

    def __setattr__(self, name, value):
        object.__getattribute__(self, '_refuse')()

    __iter__ = __next__ = next = __enter__ = _refuse


Restricted.__module__ = 'mod_wsgi'


class FileWrapper(object):
    """wsgi.file_wrapper, mod_wsgi.FileWrapper. For a real file the engine sends it through
    Apache's file bucket (sendfile) instead of iterating; any other file-like object is read
    in blocks of blksize."""

    def __init__(self, filelike, blksize=8192):
        if blksize < 0:
            raise ValueError('blksize must not be negative')
        self._mod_wsgi_filelike = filelike
        self._mod_wsgi_blksize = blksize
        self._mod_wsgi_closed = False

    @property
    def filelike(self):
        return self._mod_wsgi_filelike

    @property
    def blksize(self):
        return self._mod_wsgi_blksize

    def __iter__(self):
        return self

    def __next__(self):
        if self._mod_wsgi_closed:
            raise ValueError('I/O operation on closed file')
        data = self._mod_wsgi_filelike.read(self._mod_wsgi_blksize)
        if not isinstance(data, bytes):
            raise TypeError('file wrapper read() must return bytes, not %s' % type(data).__name__)
        if data:
            return data
        raise StopIteration

    next = __next__

    def close(self):
        """Closes the file-like object, as mod_wsgi does: its own errors are not the
        response's."""
        self._mod_wsgi_closed = True
        close = getattr(self._mod_wsgi_filelike, 'close', None)
        if close is not None:
            try:
                close()
            except Exception:
                pass


FileWrapper.__module__ = 'mod_wsgi'


class RequestTimeout(BaseException):
    """Raised by an application (or by code it calls) to give up on a request that took too
    long: mod_wsgi answers 504 and logs one line, no traceback (mod_wsgi 6)."""


RequestTimeout.__module__ = 'mod_wsgi'


def _restrict_signal(log):
    """WSGIRestrictSignal On (the default), as in mod_wsgi: Apache owns the process's signal
    handlers, so an application's signal.signal() is ignored (the handler is returned, as if
    it had been installed) and logged with the caller's stack."""
    try:
        import signal
    except ImportError:
        return
    import os

    def intercept(signum, handler):
        log(WARNING, 'mod_wsgi (pid=%d): Callback registration for signal %d ignored.' % (os.getpid(), signum))
        import traceback
        for entry in traceback.format_stack()[:-1]:
            for line in entry.rstrip('\n').split('\n'):
                log(WARNING, line)
        return handler

    signal.signal = intercept


def setup(group, is_main, initial_environ, python_path, version, process_metrics, server_metrics, log,
          restrict_stdin, restrict_stdout, restrict_signal, maximum_processes, threads_per_process,
          process_group, switch_interval, own_gil, home_path):
    import codecs
    import os
    import site
    import sys
    import types

    # As mod_wsgi does for every new interpreter: Python 2 fills an interpreter's codec registry
    # on its first encode, and a thread that encodes while another is still importing the
    # encodings package finds the registry empty ("no codec search functions registered").
    codecs.lookup('ascii')

    # Before anything can import an extension (a .pth file, the application): see
    # single_phase.py, run into these globals before this file.
    refused_extensions = []
    if own_gil:
        refuse_single_phase_extensions(refused_extensions)  # noqa: F821

    if is_main:
        # threading records the thread that first imports it as the main thread, and waits for
        # that thread at finalisation: make it the thread that starts (and ends) Python here.
        import threading  # noqa: F401
    else:
        # CPython fills a new sub-interpreter's os.environ from the process environment as it
        # is now, which includes whatever another group's application put there (for example
        # DJANGO_SETTINGS_MODULE). Start from the environment the child started with instead.
        # Only the mapping is replaced, by a new dict: the process environment is left alone,
        # and on Python 3.8 the old mapping is posix.environ itself, one object shared by
        # every interpreter, which must not be changed.
        if sys.version_info[0] >= 3:
            os.environ._data = dict(
                (os.environ.encodekey(os.fsdecode(key)), os.environ.encodevalue(os.fsdecode(value)))
                for key, value in initial_environ)
        else:
            os.environ.data = dict(initial_environ)

    if switch_interval > 0 and hasattr(sys, 'setswitchinterval'):
        # A daemon group's switch-interval= (Python 2 has no such setting).
        sys.setswitchinterval(switch_interval)

    # The Log objects under sys.stdout and sys.stderr, kept whatever the application makes
    # of those names, for end_request.
    shared_logs = []
    if sys.version_info[0] >= 3:
        # As mod_wsgi: io.TextIOWrapper streams over the error log.
        def stream(name):
            wrapper = _text_stream(log, ERR, name, True)
            shared_logs.append(wrapper.buffer)
            return wrapper

        def new_errors():
            return _text_stream(log, ERR, '<wsgi.errors>', False)
    else:
        # Python 2's print writes byte strings, which a TextIOWrapper refuses: the text
        # streams of before, and one shared wsgi.errors (partial lines kept per thread).
        def stream(name):
            shared_logs.append(Log(log, ERR, name))
            return shared_logs[-1]

        shared_errors = Log(log, ERR, 'wsgi.errors')

        def new_errors():
            return shared_errors

    def end_request():
        """A request (or side script) ends on this thread: what it left of a line on
        sys.stdout or sys.stderr is logged now, attributed to it."""
        for shared in shared_logs:
            shared.flush()

    sys.stdout = Restricted('sys.stdout') if restrict_stdout else stream('<stdout>')
    sys.stderr = stream('<stderr>')
    if restrict_stdin:
        sys.stdin = Restricted('sys.stdin')
    if restrict_signal:
        _restrict_signal(log)

    # As mod_wsgi: each directory through site.addsitedir (so .pth files work), and the
    # directories added are moved to the front of sys.path. One layer after another
    # (WSGIPythonPath, then each <WSGIInterpreterOptions>'s, least specific first), as mod_wsgi 6
    # does: the most specific layer ends up in front.
    for layer in python_path:
        before = list(sys.path)
        for path in layer:
            site.addsitedir(path)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + [p for p in sys.path if p not in added]
    # A daemon group's home=, first, as mod_wsgi puts it (as a script run with python finds
    # its own directory first).
    if home_path:
        sys.path.insert(0, home_path)

    event_callbacks = []
    shutdown_callbacks = []

    def subscribe_events(callback):
        """Calls callback(name, **kwargs) for request_started, request_finished and
        request_exception events in this interpreter."""
        event_callbacks.append(callback)

    def subscribe_shutdown(callback):
        """Calls callback('process_stopping', **kwargs) when this interpreter ends."""
        shutdown_callbacks.append(callback)

    module = types.ModuleType("mod_wsgi")
    module.FileWrapper = FileWrapper
    module.Restricted = Restricted
    module.RequestTimeout = RequestTimeout
    module.version = version
    module.process_group = process_group
    module.application_group = group
    module.maximum_processes = maximum_processes
    module.threads_per_process = threads_per_process
    module.process_metrics = process_metrics
    module.server_metrics = server_metrics
    module.subscribe_events = subscribe_events
    module.subscribe_shutdown = subscribe_shutdown
    # Extension modules refused in this own-GIL interpreter (single-phase init), by name.
    module.refused_extensions = refused_extensions
    sys.modules["mod_wsgi"] = module
    return event_callbacks, shutdown_callbacks, fire, new_errors, FileWrapper, end_request


def fire(callbacks, name, kwargs):
    # An exception in one subscriber is reported and does not stop the others or the request.
    for callback in list(callbacks):
        try:
            callback(name, **kwargs)
        except Exception:
            import traceback
            traceback.print_exc()
