// LucidNNTests
