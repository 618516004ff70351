fn main() -> std::process::ExitCode {
    sepia::cli::main()
}
