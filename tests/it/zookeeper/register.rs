//! `confsync register --backend zookeeper` against a real ZooKeeper.
