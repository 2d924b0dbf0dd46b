//! MQTT client: a no_std sans-IO core, an umqtt-style blocking client, an async tokio client.
