//! A node whose own state root differs from what a finalized header claims
//! stops serving finality and says why (issue 9, defect 10).

use bytes::Bytes;
use std::sync::Arc;
use verity_hub::Hub;
use verity_ledger::{Genesis, Ledger, MemoryDisk, Params};
use verity_node::{
    application::LedgerApp,
    chain::ChainStore,
    consensus::{genesis_header, Application},
    service::assemble_state,
    state::NodeInfo,
};
use verity_primitives::{
    block::BlockBody, codec::sha256, codec::Canonical, BlockHeader, StateClaim, B256,
};

fn header(parent: &BlockHeader, claim: StateClaim, body: &[u8]) -> BlockHeader {
    BlockHeader {
        parent: parent.digest(),
        height: parent.height + 1,
        timestamp_ms: parent.timestamp_ms + 1,
        claim,
        body_hash: B256::from(sha256(body)),
        seed: None,
    }
}

#[test]
fn a_finalized_claim_that_differs_from_our_root_halts_the_node() {
    let hub_dir = tempfile::tempdir().unwrap();
    let genesis = Genesis {
        chain_id: 5,
        params: Params {
            exact_params: verity_engine::ExactParams::default().to_bytes(),
            ..Params::default()
        },
        accounts: vec![],
        executors: vec![],
        models: vec![],
    };
    let ledger = Ledger::open_on(&MemoryDisk::new(), genesis.clone()).unwrap();
    let chain = ChainStore::open_on(&MemoryDisk::new()).unwrap();
    let info = NodeInfo {
        chain_id: 5,
        identity: String::new(),
        validators: vec![],
        validator: String::new(),
        api: String::new(),
    };
    let state = Arc::new(
        assemble_state(
            ledger,
            Hub::open(hub_dir.path()).unwrap(),
            chain,
            &genesis,
            info,
            None,
            verity_engine::Limits::default(),
        )
        .unwrap(),
    );
    let app = LedgerApp::new(state.clone(), None);
    let body = BlockBody::default().encode();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let h1 = header(&genesis_header(), StateClaim::default(), &body);
        app.finalized(h1.clone(), Bytes::from(body.clone()), None)
            .await
            .unwrap();
        let ours = state.ledger.root_at(1).unwrap().unwrap();
        // An honest claim of height 1: still serving.
        let h2 = header(
            &h1,
            StateClaim {
                height: 1,
                root: ours,
            },
            &body,
        );
        app.finalized(h2.clone(), Bytes::from(body.clone()), None)
            .await
            .unwrap();
        assert_eq!(state.halt_reason(), None);
        // The network finalized another root for height 2 than ours.
        let h3 = header(
            &h2,
            StateClaim {
                height: 2,
                root: B256::repeat_byte(0xee),
            },
            &body,
        );
        app.finalized(h3, Bytes::from(body.clone()), None)
            .await
            .unwrap();
    });
    let reason = state
        .halt_reason()
        .expect("the node stopped serving finality");
    assert!(reason.contains("state diverged"), "{reason}");
    assert!(reason.contains("after height 2"), "{reason}");
}
