"""Grammar nodes, the library of grammar functions, serialisation for llguidance, match()."""
