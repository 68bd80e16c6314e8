"""``python -m facectx.zoo``: print the zoo's layer and parameter summary."""

from facectx.zoo import _main

if __name__ == "__main__":
    _main()
