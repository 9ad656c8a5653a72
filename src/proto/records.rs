//! Request and reply records. (Filled in by the codec work.)
