import sys

from portal.cli import main

main(["portal", *sys.argv[1:]])
