"""`jmigrate plan`: walk a tree, run the rules, collect findings, render them, apply the safe edits."""
