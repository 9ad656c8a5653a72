//! zoo.cfg. (Filled in by the config work.)
