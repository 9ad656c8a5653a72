//! `zkCli`: the ZooKeeper command-line shell. Everything is in
//! `zookeeper_rs::client::cli`.

fn main() -> std::process::ExitCode {
    zookeeper_rs::client::cli::main()
}
