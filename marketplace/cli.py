"""The `marketplace` command (a FlaskGroup, so `marketplace run` and `marketplace db upgrade` work too).

Each feature adds its own commands (its ``cli.py``) when the application is built.
"""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from marketplace import create_app


@click.group(cls=FlaskGroup, create_app=create_app, help="Tanhui 碳汇 marketplace administration.")
def main():
    pass


if __name__ == "__main__":  # python -m marketplace.cli … (the checkout, not the installed script)
    main()
