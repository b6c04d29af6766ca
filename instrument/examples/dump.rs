//! Developer aid: instrument a .wat/.wasm file and print the result as text.
fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: dump <file.wat|file.wasm>");
    let bytes = wat::parse_file(&path).expect("parse");
    match forkify_instrument::instrument(&bytes, &forkify_instrument::Config::default()) {
        Ok(out) => {
            println!("{}", wasmprinter::print_bytes(&out.bytes).expect("print"));
            eprintln!("{:#?}", out.report);
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
