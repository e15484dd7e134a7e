fn main() -> std::process::ExitCode {
    kkm_agent::cli::run()
}
