"""``python -m lsegeo`` runs the command line."""

from lsegeo.cli import main

if __name__ == "__main__":
    main()
