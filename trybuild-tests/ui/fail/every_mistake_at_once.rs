use axum::{Router, routing::get};
use sse_runtime::sse;

sse! {
    #[sse_endpoint(pign = 15, sep = "\t", status = 42)]
    fn numbers() {
        let n: u32 = "7".parse()?;
        yield n;
    }
}

fn main() {
    // The route still type-checks: the fn keeps its signature next to the errors.
    let _app: Router = Router::new().route("/numbers", get(numbers));
}
