"""Every figure lsegeo draws (matplotlib, imported only when a figure is asked for)."""
