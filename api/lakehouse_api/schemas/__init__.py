"""Request and response bodies, split by resource and by direction (Create / Public / plural Public)."""
