from scan2conv.cli import main

main()
