use process_runtime::process_task;

#[process_task]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
