"""Surface layer: ``python -m sse_toolkit`` runs the ``sse-toolkit`` command."""

from .cli import main

if __name__ == "__main__":
    main()
