// LucidOpticsTests
