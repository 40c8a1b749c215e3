from forklift.cli.fast import main

main()
