#!/bin/sh
# The MISC_CHECK of keepalived's misc_check and misc_check_arg samples (their misc_path):
# healthy when run without arguments (misc_check), failed when run with misc_check_arg's
# "arg1 arg2", so the IPVS table shows that the script ran and with which arguments.
[ "$#" -eq 2 ] && [ "$1" = arg1 ] && [ "$2" = arg2 ] && exit 1
exit 0
