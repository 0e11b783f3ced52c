// LucidAutogradTests
