from coordsr.cli import app_main

app_main()
