from osteon.cli import main

main()
