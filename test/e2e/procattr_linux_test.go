package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd killed when the test binary dies, even by SIGKILL
// (a `go test -timeout` or a killed CI job): a leftover SIPp or sipward
// would hold its port and burn CPU under the next run.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
