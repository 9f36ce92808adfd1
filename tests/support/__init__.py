"""What the tests share and are not tests themselves: fixtures of real services (container
engine, registries, a private Sigstore), stand-in servers that speak a real wire format,
generators of policy inputs and the hostile values the regression tests feed the code."""
