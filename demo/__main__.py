"""Placeholder: replaced by the real demo."""

import sys


def main() -> int:
    print("demo not yet written")
    return 1


if __name__ == "__main__":
    sys.exit(main())
