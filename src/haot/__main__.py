from haot.cli import main

main()
