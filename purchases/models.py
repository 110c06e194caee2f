# Models arrive with the purchases issue.
