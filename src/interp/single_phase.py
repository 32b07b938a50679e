# Runs in each interpreter that has its own GIL (Python 3.12+), before any application code.
#
# CPython refuses an extension module with single-phase init in such an interpreter ("does not
# support loading in subinterpreters"), but on 3.12 only after running the module's init
# function there: the module's C statics then hold objects made by this interpreter's own
# allocator, and the next interpreter that imports it uses them (memory corruption, seen as
# "free(): invalid size" with _datetime). So the refusal is made here, before the init runs,
# from the symbols the shared object imports: one that calls PyModule_Create2 and never
# PyModuleDef_Init builds its module the single-phase way. CPython's own check stays behind
# this one for what it misses. The names refused are kept in mod_wsgi.refused_extensions, so
# that WSGIPerInterpreterGIL Auto can tell why an import failed (the ImportError itself may be
# swallowed: datetime falls back to _pydatetime, and _zoneinfo then fails on another error).

import struct

SHT_DYNSYM = 11
SHN_UNDEF = 0


def _undefined_symbols(path, wanted):
    """Which of `wanted` the ELF64 little-endian shared object at `path` imports, or None if
    it is not one this can read (then CPython's own check decides). Reads the headers and the
    dynamic symbol table only (no import here: this runs inside an import)."""
    with open(path, 'rb') as f:
        def read(offset, size):
            f.seek(offset)
            return f.read(size)
        header = read(0, 64)
        if len(header) < 64 or header[:4] != b'\x7fELF' or header[4] != 2 or header[5] != 1:
            return None
        shoff, = struct.unpack_from('<Q', header, 0x28)
        shentsize, shnum = struct.unpack_from('<HH', header, 0x3A)
        table = read(shoff, shentsize * shnum)
        sections = [struct.unpack_from('<IIQQQQIIQQ', table, i * shentsize) for i in range(shnum)]
        for section in sections:
            if section[1] != SHT_DYNSYM:
                continue
            symbols = read(section[4], section[5])
            entsize = section[9] or 24
            link = sections[section[6]]
            strings = read(link[4], link[5])
            found = set()
            for at in range(0, len(symbols) - entsize + 1, entsize):
                name_at, _info, _other, shndx = struct.unpack_from('<IBBH', symbols, at)
                if shndx != SHN_UNDEF:
                    continue
                name = strings[name_at:strings.find(b'\0', name_at)].decode('ascii', 'replace')
                if name in wanted:
                    found.add(name)
            return found
        return None


def is_single_phase(symbols):
    """True when an extension importing `symbols` builds its module with PyModule_Create2
    only (single-phase init)."""
    return bool(symbols) and 'PyModule_Create2' in symbols and 'PyModuleDef_Init' not in symbols


def refuse_single_phase_extensions(refused):
    """Makes ExtensionFileLoader refuse single-phase modules in this interpreter, appending
    each refused module's name to `refused`; also appends a multi-phase module that CPython
    itself refuses here (no per-interpreter GIL support declared): its init only returned its
    definition, so the shared GIL can load it afresh."""
    from importlib import machinery

    loader = machinery.ExtensionFileLoader
    original = loader.create_module
    symbols_of = {}
    message = 'does not support loading in subinterpreters'

    def create_module(self, spec):
        path = self.path
        if path not in symbols_of:
            try:
                symbols_of[path] = _undefined_symbols(path, ('PyModule_Create2', 'PyModuleDef_Init'))
            except Exception:
                symbols_of[path] = None
        symbols = symbols_of[path]
        if is_single_phase(symbols):
            if spec.name not in refused:
                refused.append(spec.name)
            raise ImportError(
                'module %s %s (single-phase init): mod_wsgi-rs refused it before its init '
                'could run in this interpreter, which has its own GIL' % (spec.name, message),
                name=spec.name, path=path)
        try:
            return original(self, spec)
        except ImportError as e:
            if message in str(e) and symbols and 'PyModuleDef_Init' in symbols and spec.name not in refused:
                refused.append(spec.name)
            raise

    loader.create_module = create_module
