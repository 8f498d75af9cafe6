"""Pure-Python twins of the compiled modules: same names, signatures, results and messages."""
