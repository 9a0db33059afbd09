"""Contract test suites every backend must pass (store, artifact store, executor).

Third-party backends subclass these classes in their own test modules and provide the fixture.
"""
