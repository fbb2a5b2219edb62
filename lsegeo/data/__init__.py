"""Package data: metadata tables declared once, as data."""
