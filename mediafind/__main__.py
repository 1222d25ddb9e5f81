from mediafind.entry import main

main()
