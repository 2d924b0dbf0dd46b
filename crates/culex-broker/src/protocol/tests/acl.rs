//! The ACL file, as the protocol applies it.

use std::time::Duration;

use super::Sim;
use crate::testing::local_config;
use culex_codec::QoS;

use super::Raw;

#[test]
fn acl_denies_subscribe_and_publish() {
    let dir = std::env::temp_dir().join(format!(
        "culex-acl-{}-{}",
        std::process::id(),
        culex_testkit::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let acl = culex_testkit::write_file(
        &dir,
        "acl",
        "topic read open/#\ntopic write open/in\npattern write own/%c\npattern read own/+\ntopic deny own/hidden\n",
    );
    let mut config = local_config();
    config.security.acl_file = Some(acl);
    let broker = Sim::start_with(config);
    let (mut sub, _) = Raw::connect(broker.port(), "reader", true);
    // Denied subscription: 0x80 (mosquitto 2.0 does not check; culex does).
    assert_eq!(
        sub.subscribe(&[("secret/#", QoS::AtMostOnce), ("open/#", QoS::AtMostOnce)]),
        vec![0x80, 0]
    );
    let (mut publ, _) = Raw::connect(broker.port(), "writer", true);
    publ.publish_acked("open/other", b"denied", QoS::AtLeastOnce, false, 1);
    publ.publish_acked("open/in", b"allowed", QoS::AtLeastOnce, false, 2);
    assert_eq!(sub.recv().publish().payload, b"allowed");
    assert!(
        sub.try_recv(Duration::from_millis(300)).is_none(),
        "denied publish was dropped"
    );
    let _ = std::fs::remove_dir_all(dir);
}
