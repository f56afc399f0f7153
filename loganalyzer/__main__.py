from loganalyzer.entry import main

main()
