# module-registry: every task the README mentions. `make help` lists them.
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help demo test test-rust lint examples

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

demo: ## run the main demo end to end
	$(CARGO) run -q -p module-registry --example quickstart

test: test-rust ## run every test

test-rust: ## Rust unit, integration, example and doc tests
	$(CARGO) test --workspace

lint: ## clippy with warnings as errors, and rustfmt check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

examples: ## run every Rust example
	@for e in quickstart web_framework content_management service_discovery service_orchestration plugins plugin_marketplace; do \
		echo "== $$e"; $(CARGO) run -q -p module-registry --example $$e || exit 1; done
