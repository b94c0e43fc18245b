//! Prints the fidelity matrix (service field × backend) as Markdown: `scripts/fidelity`.

fn main() {
    print!("{}", berth::render::fidelity::matrix_markdown());
}
