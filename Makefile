# The two commands of the README. Both install what a fresh Debian/Ubuntu machine lacks (apt) first.
.PHONY: run test serve
run:    ## build and run the tray app
	bash scripts/run.sh $(ARGS)
test:   ## build and run every test (lint, core, tray app, GUI end-to-end)
	bash scripts/test.sh
serve:  ## run the headless daemon in the foreground
	cargo run -p webapi-core --bin cvmwebapi -- serve $(ARGS)
