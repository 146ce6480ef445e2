"""`python -m sandboxd`: the same as `sandscope sandboxd`."""

from sandboxd.cli import main

raise SystemExit(main())
