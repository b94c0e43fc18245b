//! Rebuilds berth when a file of the embedded library changes: `include_dir!` reads the
//! folders at compile time, but cargo only knows to recompile when told to watch them.

fn main() {
    for dir in ["schemas", "modules/services", "profiles"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
