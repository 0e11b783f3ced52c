// LucidImagingTests
