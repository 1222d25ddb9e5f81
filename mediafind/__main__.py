from mediafind.cli import main

main()
