// shared/runtime/pyexec.c includes extmod/modplatform.h, which the MicroPython
// sdist does not ship (it has no extmod/); pyexec uses nothing from it here.
