from forklift.cli.main import main

main()
