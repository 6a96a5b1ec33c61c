//! The `warrenctl` binary: the same commands as `warren ctl` (see the library docs).

use std::process::ExitCode;

fn main() -> ExitCode {
    warren_ctl::main_from(std::env::args_os())
}
