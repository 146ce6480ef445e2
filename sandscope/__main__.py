"""`python -m sandscope`: the same as the `sandscope` command."""

from sandscope.cli import main

raise SystemExit(main())
